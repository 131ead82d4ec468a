"""Files for other tools: the run's figures and report, JUnit, trace, metrics, exports."""
