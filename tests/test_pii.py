"""PIIScrubber: each kind replaced, look-alikes left alone, counts in stats and metadata."""

from __future__ import annotations

import pytest
from _wiki_pages import assert_reconciles, read_documents, stage_stats
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.writers import JsonlWriter

from twbert.dumps import write_fineweb_parquet
from twbert.pipeline.fineweb import FineWebReader
from twbert.pipeline.pii import PIIScrubber, valid_national_id


@pytest.fixture(scope="module")
def p():
    return PIIScrubber()


@pytest.mark.parametrize(
    "text,expected,kind",
    [
        ("請寫信到john.doe+tw@mail.example.com.tw聯絡", "請寫信到<EMAIL>聯絡", "email"),
        ("信箱：service@gov.tw。", "信箱：<EMAIL>。", "email"),
        ("主機192.168.10.1已上線", "主機<IP>已上線", "ip"),
        ("位址2001:db8::8a2e:370:7334與fe80::1", "位址<IP>與<IP>", "ip"),
        ("本機::1、fe80::1ff:fe23:4567:890a與dead:beef::cafe", "本機<IP>、<IP>與<IP>", "ip"),
        ("手機0912-345-678", "手機<PHONE>", "phone"),
        ("手機0912 345 678或0912345678", "手機<PHONE>或<PHONE>", "phone"),
        ("國際+886 912 345 678與+886-9-1234-5678", "國際<PHONE>與<PHONE>", "phone"),
        ("電話(02)2345-6789、(02) 2345 6789、02-2345-6789", "電話<PHONE>、<PHONE>、<PHONE>", "phone"),
        ("苗栗037-123-456，海外請撥+886-2-2345-6789", "苗栗<PHONE>，海外請撥<PHONE>", "phone"),
        ("身分證字號A123456789", "身分證字號<ID>", "id"),
        ("居留證FC12345678", "居留證<ID>", "id"),
    ],
)
def test_each_kind_is_replaced(p, text, expected, kind):
    out, counts = p.scrub(text)
    assert out == expected
    assert set(counts) == {kind}


@pytest.mark.parametrize(
    "text",
    [
        "版本1.2.3釋出", "10.0.0.256不是位址", "時間12:30:45開始", "訂單編號20240101001",
        "型號A1234567890", "統一編號12345678", "西元2024-01-01", "ISBN 978-957-08-1234-5", "比數3:2:1",
        "電子郵件地址格式是 名字@網域", "09123不是手機", "類別ABC::DEF的方法", "電源ac::dc轉換", "Face::Bead",
    ],
)
def test_look_alikes_are_left_alone(p, text):
    assert p.scrub(text) == (text, {})


def test_national_id_checksum():
    assert valid_national_id("A123456789")
    assert not valid_national_id("A123456788")
    strict = PIIScrubber(validate_id_checksum=True)
    assert strict.scrub("A123456789與A123456788") == ("<ID>與A123456788", {"id": 1})
    assert PIIScrubber().scrub("A123456788")[0] == "<ID>"


def test_kinds_and_sources_are_configurable():
    only_mail = PIIScrubber(kinds=("email",))
    assert only_mail.scrub("a@b.tw 0912-345-678") == ("<EMAIL> 0912-345-678", {"email": 1})
    with pytest.raises(ValueError, match="unknown PII kinds"):
        PIIScrubber(kinds=("ssn",))
    web_only = PIIScrubber(sources=("web",))
    docs = list(web_only.run([Document("a@b.tw", "1", metadata={"source": "wiki"}), Document("a@b.tw", "2", metadata={"source": "web"})]))
    assert [d.text for d in docs] == ["a@b.tw", "<EMAIL>"]


def test_counts_in_stats_and_metadata(tmp_path):
    rows = [
        {"text": "聯絡a@b.com.tw或0912-345-678、(02)2345-6789", "id": "1"},
        {"text": "沒有個資的文字", "id": "2"},
    ]
    write_fineweb_parquet(tmp_path / "in" / "a.parquet", rows)
    out, logs = tmp_path / "out", tmp_path / "logs"
    LocalPipelineExecutor([FineWebReader(str(tmp_path / "in")), PIIScrubber(), JsonlWriter(str(out))],
                          tasks=2, workers=1, logging_dir=str(logs)).run()
    docs = {d["id"]: d for d in read_documents(out)}
    assert docs["1"]["text"] == "聯絡<EMAIL>或<PHONE>、<PHONE>"
    assert docs["1"]["metadata"]["pii"] == {"email": 1, "phone": 2}
    assert "pii" not in docs["2"]["metadata"]
    steps = stage_stats(logs)
    assert steps[1]["stats"]["pii_email"] == 1 and steps[1]["stats"]["pii_phone"] == 2
    assert_reconciles(steps)


def test_quick_guards_never_hide_a_match():
    """A document is only scanned with a full pattern when its quick guard matches: every match of a
    full pattern must contain a guard match, on random strings dense in PII-like characters."""
    import random

    from twbert.pipeline.pii import _QUICK

    rng = random.Random(11)
    alphabet = "0123456789" * 4 + ".:-()+ 臺AFZab@" + "\u3000\n"
    pieces = ["886", "+886", "00886", "09", "(02)", "(037)", "02-", "::", "fe80", "A1", "FC", "192.168."]
    for _ in range(20000):
        text = "".join(rng.choice(pieces) if rng.random() < 0.15 else rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        for full, quick in _QUICK.items():
            if full.search(text):
                assert quick.search(text), (full.pattern, text)
