"""``pig-lightning serve``: a local search page over a gallery (the optional ``serve`` extra).

:func:`~pig_lightning.serving.app.create_app` builds the FastAPI app for a loaded
:class:`~pig_lightning.retrieval.Retriever`; ``pig_lightning.commands.serve`` is the
command. FastAPI is imported only by ``app``: this package imports without the extra.
"""

from pig_lightning.serving.videos import VideoFiles, VideoUnavailable

__all__ = ["VideoFiles", "VideoUnavailable"]
