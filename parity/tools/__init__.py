"""Maintainer tools built on the pipeline: ``bench`` and ``benchprops`` (what recording costs), ``docs`` and
``tensornames`` (generated docs), ``pitfall_check`` (every pitfall's wrong port caught, right port clean),
``pitfall_matrix`` (every wrong port against every signature).
"""
