import pytest

from reid_dff.utils.registry import Registry, RegistryKeyError


def test_register_get_and_names():
    reg = Registry("widget")

    @reg.register()
    class Alpha:
        pass

    @reg.register("b")
    def beta():
        return 2

    assert reg.get("Alpha") is Alpha
    assert reg.get("b")() == 2
    assert reg.names() == ["Alpha", "b"] and "b" in reg and len(reg) == 2


def test_unknown_name_lists_known_names():
    reg = Registry("widget")
    reg.register("one")(object)
    with pytest.raises(RegistryKeyError, match=r"unknown widget 'two'; known names: one"):
        reg.get("two")


def test_duplicate_registration_is_an_error():
    reg = Registry("widget")
    reg.register("x")(int)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("x")(float)
