"""Reality: microbenchmarks of this machine, real models timed, real endpoints replayed, calibration."""
