"""The built-in "local" engine: runs ComfyUI API-format graphs on the CPU with Pillow.

Public entry points are ``executor.execute_graph`` / ``executor.validate_graph`` and
``nodes.NODE_SPECS`` / ``nodes.object_info``.
"""
