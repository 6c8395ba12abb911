"""Visualisation: skeletons on images, contact sheets."""

from bupose.viz.draw import draw_poses, make_grid, person_colour

__all__ = ["draw_poses", "make_grid", "person_colour"]
