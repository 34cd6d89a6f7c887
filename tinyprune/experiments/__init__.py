"""Stage 7, experiments made of many independent points (a sweep's, a sensitivity analysis's,
the lottery study's): run them on many workers, keep each as it finishes, and summarise them
over seeds."""
