"""``ftwizard report``: a Markdown and HTML report of a session, with plots."""
