"""Routing and assignment: agent availability and capacity, strategies, the waiting queue,
priority customers with first-response targets, and ordered routing rules."""
