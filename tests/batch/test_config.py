"""batch/config.yaml: values the types cannot check."""

from __future__ import annotations

import pytest


def test_batch_refuses_more_reasons_than_the_results_have_columns(tmp_path):
    from batch.config import BatchError, load_config

    path = tmp_path / "batch.yaml"
    path.write_text("top_reasons: 4\n")
    with pytest.raises(BatchError, match=r"top_reasons must be between 0 and 3 .*reason_3\), got 4"):
        load_config(path)
