"""Launching a sweep's runs, one module a job; importing this package loads none of them.

grid.py    a Hydra grid -> validated configs, the sweep's folder and record, local packs or SLURM arrays
local.py   packs run here, in worker processes
slurm.py   packs submitted as SLURM job arrays (submitit), the code snapshot they import
worker.py  what runs in each SLURM array task (its signals, requeue, progress)
queue.py   what SLURM says of the sweep's jobs (squeue, sacct): read by `sweep status` without torch or Hydra
"""
