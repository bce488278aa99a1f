"""Studies: their configurations (``configs``), shards of a study among tasks (``shards``), the
statistics of their results (``statistics``), the runner (``runner``) and the loading of their run
summaries (``summaries``).
"""
