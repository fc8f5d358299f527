"""Window sampling (training.sampler): resume, ranks, alignment, bounds."""

import numpy as np
import pytest

from training.sampler import WindowSampler, sequential_starts


def test_resumed_sampler_reproduces_the_uninterrupted_batches():
    full = WindowSampler(10_000, seq_len=32, batch_size=4, seed=7)
    expected = [full.next_starts() for _ in range(10)]
    first = WindowSampler(10_000, seq_len=32, batch_size=4, seed=7)
    got = [first.next_starts() for _ in range(4)]
    state = first.state_dict()
    resumed = WindowSampler(10_000, seq_len=32, batch_size=4, seed=7)
    resumed.load_state_dict(state)
    got += [resumed.next_starts() for _ in range(6)]
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)
    assert not np.array_equal(expected[0], expected[1])
    other_seed = WindowSampler(10_000, seq_len=32, batch_size=4, seed=8).next_starts()
    assert not np.array_equal(other_seed, expected[0])


def test_ranks_split_the_global_batch_without_overlap():
    single = WindowSampler(50_000, seq_len=16, batch_size=12, seed=1)
    ranks = [WindowSampler(50_000, seq_len=16, batch_size=4, seed=1, rank=r, world_size=3)
             for r in range(3)]
    for _ in range(5):
        whole = single.next_starts()
        parts = [s.next_starts() for s in ranks]
        np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_starts_stay_in_bounds_aligned_and_cover_the_range():
    n, seq_len, align = 1000, 64, 64
    s = WindowSampler(n, seq_len=seq_len, batch_size=256, seed=0, align=align)
    starts = np.concatenate([s.next_starts() for _ in range(20)])
    assert starts.dtype == np.int64
    assert (starts % align == 0).all()
    assert starts.min() == 0 and starts.max() + seq_len + 1 <= n
    # every aligned start that fits is drawn: 896 + 65 <= 1000 < 960 + 65
    assert set(starts.tolist()) == set(range(0, n - seq_len, align))


def test_state_from_another_stream_is_refused():
    s = WindowSampler(1000, seq_len=8, batch_size=2, seed=0)
    other = WindowSampler(1000, seq_len=16, batch_size=2, seed=0).state_dict()
    with pytest.raises(ValueError, match="saved with seq_len=16 but this run has seq_len=8"):
        s.load_state_dict(other)
    # a different rank (rank 0 saved the checkpoint) resumes fine
    r1 = WindowSampler(1000, seq_len=8, batch_size=1, seed=0, rank=1, world_size=2)
    r1.load_state_dict(WindowSampler(1000, seq_len=8, batch_size=1, seed=0, rank=0,
                                     world_size=2).state_dict())


def test_invalid_settings_are_clear_errors():
    with pytest.raises(ValueError, match="holds no window"):
        WindowSampler(8, seq_len=8, batch_size=1)
    with pytest.raises(ValueError, match="rank 2 is not in"):
        WindowSampler(100, seq_len=8, batch_size=1, rank=2, world_size=2)


def test_sequential_starts_tile_the_split():
    starts = sequential_starts(100, seq_len=10)
    np.testing.assert_array_equal(starts, np.arange(0, 90, 10))
    assert starts[-1] + 10 + 1 <= 100
    sub = sequential_starts(100, seq_len=10, limit=3)
    np.testing.assert_array_equal(sub, [0, 40, 80])
