import gc
from pathlib import Path

from core.settings import LIGHT_BATCH_SIZE, ConsumerType, Settings
from processors.cli import tune_gc


def test_contract_names_are_read_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("BROKER_URL", "kafka://a:1;b:2")
    monkeypatch.setenv("CONSUMER_TYPE", "light")
    monkeypatch.setenv("PORT", "7001")
    monkeypatch.setenv("DATA_DIR", "/tmp/x")
    monkeypatch.setenv("JWT_SECRET", "s3cret-s3cret-s3cret-s3cret-s3cret")
    s = Settings()
    assert s.BROKER_URL == "kafka://a:1;b:2"
    assert s.CONSUMER_TYPE is ConsumerType.LIGHT
    assert s.PORT == 7001
    assert s.blob_dir == Path("/tmp/x/blobs")
    assert "s3cret" not in repr(s)


def test_defaults_need_nothing(monkeypatch) -> None:
    for name in ("BROKER_URL", "STORE_URL", "CONSUMER_TYPE", "PORT", "DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert s.BROKER_URL is None
    assert s.STORE_URL is None
    assert s.CONSUMER_TYPE is ConsumerType.ALL
    assert Path("./data") == s.DATA_DIR


def test_the_collector_threshold_is_set_from_the_setting_and_zero_keeps_it(monkeypatch) -> None:
    before = gc.get_threshold()
    try:
        monkeypatch.setenv("GC_THRESHOLD", "12345")
        tune_gc(Settings().GC_THRESHOLD)
        assert gc.get_threshold() == (12345, 20, 10)
        gc.set_threshold(700, 10, 10)
        monkeypatch.setenv("GC_THRESHOLD", "0")
        tune_gc(Settings().GC_THRESHOLD)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_a_light_worker_takes_larger_batches_unless_told(monkeypatch) -> None:
    monkeypatch.delenv("AGENT_BATCH_SIZE", raising=False)
    for role, size in (("light", LIGHT_BATCH_SIZE), ("heavy", 500), ("all", 500)):
        monkeypatch.setenv("CONSUMER_TYPE", role)
        assert size == Settings().AGENT_BATCH_SIZE, role
    monkeypatch.setenv("CONSUMER_TYPE", "light")
    monkeypatch.setenv("AGENT_BATCH_SIZE", "500")
    assert Settings().AGENT_BATCH_SIZE == 500
    assert Settings(AGENT_BATCH_SIZE=7).AGENT_BATCH_SIZE == 7
