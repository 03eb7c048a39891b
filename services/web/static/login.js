// The login form: trades the token for the session cookie (POST /api/login), then goes back to
// the page that asked for it.
"use strict";

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const error = document.getElementById("login-error");
  error.textContent = "";
  try {
    await A.post("/api/login", { token: form.token.value });
    window.location.assign(form.dataset.next || "/");
  } catch (err) {
    error.textContent = err.status === 401 ? "wrong token" : `could not log in: ${err.message}`;
  }
});
