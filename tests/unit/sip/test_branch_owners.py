"""Which SIP worker numbered a branch, and how many workers a configuration runs."""

from __future__ import annotations

import itertools
import os

from heron.config import Config
from heron.sip.proxy import branch_id
from heron.sip.workers import fork_numbers, fork_owner
from tests.unit.sip.test_proxy import request


def test_each_worker_s_branches_name_it() -> None:
    for index in range(3):
        numbers = itertools.islice(fork_numbers(index, 3), 5)
        assert [fork_owner(branch_id(request(), n), 3) for n in numbers] == [index] * 5


def test_a_branch_heron_did_not_number_names_no_worker() -> None:
    assert fork_owner("z9hG4bK-28382-1-4", 2) is None
    assert fork_owner("z9hG4bK.", 2) is None
    assert fork_owner("z9hG4bK." + "9" * 40, 2) is None


def test_sip_workers_default_to_the_cpu_count_only_with_redis_and_no_media_bridge() -> None:
    redis = {"url": "redis://127.0.0.1:6379/0"}
    assert Config().sip_workers == 1
    assert Config(redis=redis).sip_workers == 1  # the media bridge is on by default
    cpus = len(os.sched_getaffinity(0))
    assert Config(redis=redis, media={"enabled": False}).sip_workers == cpus
    assert Config(redis=redis, media={"enabled": False}, sip={"workers": 3}).sip_workers == 3
