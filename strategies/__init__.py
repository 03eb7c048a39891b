"""Built-in strategies (dca, fractal_trailing, grid, manual), written against shared.strategy."""
