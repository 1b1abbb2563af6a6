"""Sweeps on the twin: Optuna studies per load regime, by ask and tell, with replications."""
