"""cas_dvid.objects."""
