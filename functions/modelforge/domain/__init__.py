"""Domain code: labeling, features, training, evaluation. Pure Python on DataFrames, no AWS."""
