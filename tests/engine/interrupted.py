"""A Trainer stopped right after its first epoch's checkpoint, for the exact-resume tests."""

from reid_dff.engine import Trainer


class Interrupted(Exception):
    pass


class StopAfterFirstEpoch(Trainer):
    """Raises :class:`Interrupted` once ``last.pth`` of epoch 1 is written, as a killed run would stop."""

    def save(self, name):
        path = super().save(name)
        if name == "last.pth" and self.epoch == 1:
            raise Interrupted
        return path
