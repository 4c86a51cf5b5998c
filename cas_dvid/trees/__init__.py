"""cas_dvid.trees."""
