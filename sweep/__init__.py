"""sweep: optimizer experiments on MLPs, from one run on a laptop to packed grids on a SLURM cluster."""

__version__ = "0.1.0"
