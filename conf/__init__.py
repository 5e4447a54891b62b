"""sweep's Hydra configs, shipped in the package as sweep.conf so installed wheels compose them too."""
