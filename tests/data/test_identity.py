"""cocomix_lens.data.identity: the one "refuse a directory built differently" check."""

import pytest

from cocomix_lens.data.identity import check_identity, differences


def test_differences_name_old_and_new_values_of_the_chosen_keys():
    old, new = {"k": 4, "method": "attribution", "x": 1}, {"k": 8, "method": "attribution"}
    assert differences(old, new) == ["k=4 (now 8)", "x=1 (now None)"]
    assert differences(old, new, keys=("method", "k")) == ["k=4 (now 8)"]
    check_identity("same", old, dict(old), fix="-")  # equal: no error


def test_refusal_is_one_line_with_the_fix_and_counts_what_it_does_not_show():
    old, new = {f"f{i}": i for i in range(9)}, {f"f{i}": -i for i in range(9)}
    with pytest.raises(ValueError) as err:
        check_identity("runs/x holds a cache", old, new, fix="pass a fresh --out")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("runs/x holds a cache built differently: f1=1 "
                                              "(now -1); f2=2 (now -2)")
    assert msg.endswith("f6=6 (now -6); and 2 more; fix: pass a fresh --out")
