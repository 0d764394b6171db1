"""Teams: groups of people (agents and their supervisors) that conversations can be routed to."""
