"""The MSVD captions pickle (a third party's file) is read as plain data: nothing in it runs."""

import os
import pickle
from collections import OrderedDict

import pytest

from pig_lightning.data.sources.formats import AnnotationError, read_annotations


class _RunsCode:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_plain_captions_load_and_a_pickle_that_would_run_code_is_refused(tmp_path):
    ids = tmp_path / "test_list.txt"
    ids.write_text("vid_1_2\n")
    plain = tmp_path / "raw-captions.pkl"
    plain.write_bytes(pickle.dumps(OrderedDict(vid_1_2=[["a", "cat", "runs"]]), protocol=2))
    assert read_annotations(ids, "msvd", captions_file=plain)[0].captions == ("a cat runs",)

    marker = tmp_path / "payload_ran"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"vid_1_2": [["a", "cat"]], "x": _RunsCode(str(marker))}))
    with pytest.raises(AnnotationError, match=r"evil\.pkl: refused: it names posix\.mkdir"):
        read_annotations(ids, "msvd", captions_file=evil)
    assert not marker.exists()
