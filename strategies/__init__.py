"""Built-in strategies (dca, fractal_trailing, grid, manual, range_oco), written against shared.strategy."""
