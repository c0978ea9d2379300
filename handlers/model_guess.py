"""The last try before 「没听明白」: an optional language model (BANLI_LLM_URL), asked only about a
message the rules could not place, and only ever as a question back to the person.

    上礼拜陪客户吃饭花了三百二，这钱找谁要
      → the model: {"intent": "报销", "slots": {"category": "餐费", "amount": 320}}
      → 「我理解成：报销 餐费 320，对吗？」 [对] [不是]
      → 对 runs `报销 餐费 320` as that message (handlers/understand.py `understood.yes`): the draft card.

workflows/model_reading.py decides what an answer may be; anything else — no model configured, the
model down, slow or talking nonsense — is None here, and the caller answers with its usual hint.
"""

from __future__ import annotations

import logging

from cards import Button, Card
from handlers.router import Context
from workflows import model_reading, workdays

log = logging.getLogger("banli.llm")


def guess(ctx: Context) -> Card | None:
    """A confirmation card for the model's reading of the message, or None."""
    if ctx.language_model is None:
        return None
    answer = ctx.language_model(model_reading.system_prompt(), model_reading.message_for_model(ctx.event.text))
    if answer is None:  # bot/llm.py has said why
        return None
    found = model_reading.command_for(answer)
    if found is None:
        if answer.get("intent"):  # "" is the model's honest "I don't know either"
            log.info("language model reading dropped: not an allowed intent with usable slots")
        return None
    intent, command = found
    if not model_reading.acceptable(ctx.session, intent, command, owner_id=ctx.employee.id, now=ctx.now,
                                    tz=ctx.timezone, workdays=workdays.for_company(ctx.session)):
        log.info("language model reading dropped: %s does not pass the rules", intent)
        return None
    model_reading.remember(ctx.session, ctx.event.platform, ctx.event.event_id, ctx.event.sender, command, ctx.now)
    return confirm_card(ctx, command)


def confirm_card(ctx: Context, command: str) -> Card:
    return Card(title="是这个意思吗？", body=f"我理解成：{command}，对吗？",
                buttons=(Button("对", "understood.yes", ctx.event.event_id, style="primary"),
                         Button("不是", "understood.no", ctx.event.event_id),
                         Button("帮助", "help", command="帮助")))


def remembered_command(ctx: Context, event_id: str) -> str | None:
    """The command the model's reading of message `event_id` was validated into, if it was."""
    return model_reading.remembered(ctx.session, ctx.event.platform, event_id, ctx.event.sender)
