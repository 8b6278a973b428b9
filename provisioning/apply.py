"""Running a plan's steps against the environment, phase by phase, and publishing the result.

The plan was checked first (``Item.refusal``), so a refused plan never gets here. A failing step
stops the run: what ran stays (metadata requests are not transactional), the failed item says
why and the items still waiting say ``not run``; running the command again continues from there,
since every step is decided from what the environment has.
"""

from __future__ import annotations

from collections.abc import Callable

from provisioning import payloads
from provisioning.metadata_api import MetadataApi
from provisioning.model import DesiredSchema
from provisioning.plan import Item
from provisioning.steps import (
    ChangeOption,
    CreateChoice,
    CreateColumn,
    CreateLookup,
    CreateTable,
    DeleteColumn,
    Step,
    UpdateColumn,
    UpdateTable,
)
from shared.errors import AppError, NotFound, System

Progress = Callable[[str], None]
DONE = {"create": "created", "change": "changed", "none": "unchanged", "skip": "skipped"}


def apply_plan(items: list[Item], api: MetadataApi, desired: DesiredSchema,
               progress: Progress) -> bool:
    """Run every step; returns False when one failed (its item says why)."""
    queue = sorted(((step.phase, order, item, step) for order, item in enumerate(items)
                    for step in item.steps), key=lambda entry: (entry[0], entry[1]))
    runner = _Runner(api, desired)
    failed: Item | None = None
    done: dict[int, int] = {}  # steps run, by item
    for number, (_, order, item, step) in enumerate(queue, start=1):
        progress(f"[{number}/{len(queue)}] {step.describe()}")
        try:
            runner.run(step)
        except AppError as error:
            item.status, item.error = "failed", str(error)
            failed = item
            break
        done[order] = done.get(order, 0) + 1
    finished = {item.name for order, item in enumerate(items)
                if done.get(order, 0) == len(item.steps)}
    for order, item in enumerate(items):
        if item.status:
            continue
        if done.get(order, 0) == len(item.steps) and (
                item.depends_on is None or item.depends_on in finished):
            item.status = DONE.get(item.action, "")
        else:
            # Some of its steps ran: running the command again finishes it.
            item.status = "incomplete" if done.get(order) else "not run"
    if runner.touched_tables or runner.touched_choices:
        try:
            progress("publishing customizations")
            api.publish(sorted(runner.touched_tables), sorted(runner.touched_choices))
        except AppError as error:
            progress(f"publishing failed: {error}")
            return False
    return failed is None


class _Runner:
    def __init__(self, api: MetadataApi, desired: DesiredSchema) -> None:
        self.api = api
        self.desired = desired
        self.choice_ids: dict[str, str] = {}
        self.touched_tables: set[str] = set()
        self.touched_choices: set[str] = set()

    def run(self, step: Step) -> None:
        api = self.api
        if isinstance(step, CreateChoice):
            api.create_choice(payloads.choice(step.choice))
            self.touched_choices.add(step.choice.name)
        elif isinstance(step, ChangeOption):
            api.option_action(step.action, payloads.option_action(
                step.action, step.choice, step.option, solution=api.solution))
            self.touched_choices.add(step.choice)
        elif isinstance(step, CreateTable):
            api.create_table(payloads.table(step.table, step.primary))
            self.touched_tables.add(step.table.logical_name)
        elif isinstance(step, UpdateTable):
            api.update_table(step.metadata_id, step.definition)
            self.touched_tables.add(step.table)
        elif isinstance(step, DeleteColumn):
            api.delete_attribute(step.table, step.metadata_id, step.name)
            self.touched_tables.add(step.table)
        elif isinstance(step, CreateColumn):
            choice_id = self._choice_id(step.column.choice) if step.column.choice else None
            api.create_attribute(step.table, payloads.attribute(step.column, choice_id=choice_id))
            self.touched_tables.add(step.table)
        elif isinstance(step, UpdateColumn):
            api.update_attribute(step.table, step.metadata_id, step.definition)
            self.touched_tables.add(step.table)
        elif isinstance(step, CreateLookup):
            api.create_relationship(payloads.lookup(self.desired, step.table, step.column,
                                                    step.target))
            self.touched_tables.update({step.table, step.target.logical_name})

    def _choice_id(self, name: str) -> str:
        """A global choice is bound by its MetadataId, read once it exists."""
        if name not in self.choice_ids:
            found = self.api.choice(name)
            if found is None:
                raise NotFound(System.DATAVERSE, f"the choice {name} does not exist",
                               operation=f"read choice {name}")
            self.choice_ids[name] = found.metadata_id
        return self.choice_ids[name]
