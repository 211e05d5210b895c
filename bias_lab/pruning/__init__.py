"""Pruning masks on frozen weights: block layouts, masked forward passes with a straight-through
gradient to the scores, mask files that switch on and off at inference, densities and head grids."""
