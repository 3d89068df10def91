"""Domain code: labeling, features, training, evaluation, demo data. Pure Python on DataFrames, no AWS."""
