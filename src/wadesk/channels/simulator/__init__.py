"""A WhatsApp Cloud API simulator: the Graph API, signed webhooks and a customer's phone page.

Production code runs against it unchanged; only the Graph base URL differs.
"""
