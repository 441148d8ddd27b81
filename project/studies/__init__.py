"""Queues of training runs for whole studies (`python -m project.studies`)."""
