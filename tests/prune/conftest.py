"""Shared by the pruning tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Small forwards gain nothing from threads; spin-waiting threads on a busy machine cost a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
