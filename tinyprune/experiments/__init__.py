"""Experiments made of many independent points: run them on many workers, keep each as it
finishes, and summarise them over seeds."""
