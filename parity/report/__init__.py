"""Reports for people and machines: ``text``, ``terminal``, ``jsonreport``, ``series``, ``html``, ``markdown``,
``plots``, ``tensorboard``.
"""
