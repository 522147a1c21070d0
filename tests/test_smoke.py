async def test_signal_roundtrip(store):
    sig = store.adapters.signal("BTCUSDT", "s", "e")
    await sig.wait_for_init(True)
    assert await sig.read_signal_data() is None
    await sig.write_signal_data({"id": "1"})
    assert await sig.read_signal_data() == {"id": "1"}
