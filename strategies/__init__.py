"""Built-in strategies (dca, fractal_trailing, grid, range_oco), written against shared.strategy."""
