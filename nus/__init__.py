"""Non-uniform sampling near semantic boundaries (Marin et al., ICCV 2019)."""
