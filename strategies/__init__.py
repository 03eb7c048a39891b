"""Built-in strategies (dca, fractal_trailing, grid), written against shared.strategy."""
