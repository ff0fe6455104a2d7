from pathlib import Path

from core.settings import ConsumerType, Settings


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
