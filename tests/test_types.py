"""cocomix_lens.types.as_tokens: the one token-id check of the model and the extractor."""

import pytest
import torch

from cocomix_lens.types import as_tokens


def test_integer_ids_become_a_batch_without_copies_where_possible():
    ids = torch.tensor([[3, 1, 2]], dtype=torch.int32)
    assert as_tokens(ids) is ids  # int32/int64 are used as they are
    one = as_tokens(torch.tensor([5, 6]))
    assert one.shape == (1, 2) and one.tolist() == [[5, 6]]
    small = as_tokens(torch.tensor([[7, 255]], dtype=torch.uint8))
    assert small.dtype == torch.int64 and small.tolist() == [[7, 255]]
    assert as_tokens([[1, 2]]).tolist() == [[1, 2]]


@pytest.mark.parametrize("bad,message", [
    (torch.ones(1, 3), "got dtype torch.float32; tokenize text first"),
    (torch.ones(1, 3, dtype=torch.bool), "got dtype torch.bool"),
    (torch.ones(1, 2, 3, dtype=torch.long), r"got shape \(1, 2, 3\)"),
])
def test_anything_else_is_a_one_line_error(bad, message):
    with pytest.raises(ValueError, match=message) as err:
        as_tokens(bad)
    assert "\n" not in str(err.value)


def test_the_context_counts_tokens_already_cached():
    assert as_tokens(torch.zeros(1, 4, dtype=torch.long), n_ctx=8, offset=4).shape == (1, 4)
    with pytest.raises(ValueError, match="9 tokens exceed n_ctx=8; truncate the input"):
        as_tokens(torch.zeros(1, 5, dtype=torch.long), n_ctx=8, offset=4)
