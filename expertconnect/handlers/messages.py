"""Messages (list, send, mark a conversation read, list conversations) and notifications (list,
read one, mark read, mark all read, unread count)."""

from __future__ import annotations

from expertconnect.actions import messages as messages_actions
from expertconnect.db.queries import messages as messages_q
from expertconnect.db.queries import notifications as notifications_q
from expertconnect.errors import NotFound
from expertconnect.handlers.base import BaseHandler

NOTIFICATION_NOT_FOUND = "Notification not found"


class MessagesHandler(BaseHandler):
    idempotent_methods = ("POST",)

    async def get(self) -> None:
        form = self.query_form()
        with_user = form.object_id("with_user", required=False)
        page = self.page(form)
        form.validate()
        if with_user is None:
            messages_json = await messages_q.list_messages_json(self.db, self.user_id, **page)
        else:
            messages_json = await messages_q.list_conversation_json(
                self.db, self.user_id, with_user, **page
            )
        self.write_json_page(messages_json, page)

    async def post(self) -> None:
        # sender_id, is_read and id come from the server: they are ignored if sent.
        form = self.form()
        receiver_id = form.object_id("receiver_id")
        content = form.string(
            "content", max_length=self.services.config.realtime.max_message_length
        )
        client_msg_id = form.string(
            "client_msg_id", required=False, max_length=messages_actions.CLIENT_MSG_ID_MAX
        )
        form.validate()
        await self.answer(
            lambda idempotency: messages_actions.send_message(
                self.services,
                self.user_id,
                form.valid(receiver_id),
                form.valid(content),
                client_msg_id=client_msg_id,
                idempotency=idempotency,
            ),
            status=201,
            payload=lambda sent: sent.message,
        )


class MessagesMarkReadHandler(BaseHandler):
    async def post(self) -> None:
        form = self.form()
        with_user = form.object_id("with_user")
        form.validate()
        marked = await messages_actions.mark_read(
            self.services, self.user_id, form.valid(with_user)
        )
        self.write_json({"success": True, "marked_read": marked})


class ConversationsHandler(BaseHandler):
    async def get(self) -> None:
        # Ordered by each conversation's latest message, which moves as messages arrive: an id
        # cursor would skip or repeat rows, so only `limit` applies (before_id is ignored).
        form = self.query_form()
        limit = self.page(form)["limit"]
        form.validate()
        self.finish(await messages_q.list_conversations_json(self.db, self.user_id, limit=limit))


class NotificationsHandler(BaseHandler):
    async def get(self) -> None:
        form = self.query_form()
        is_read = form.boolean("is_read", required=False)
        page = self.page(form)
        form.validate()
        if is_read is None:
            listing = notifications_q.list_notifications_json
        elif is_read:
            listing = notifications_q.list_read_notifications_json
        else:
            listing = notifications_q.list_unread_notifications_json
        self.write_json_page(await listing(self.db, self.user_id, **page), page)


class NotificationHandler(BaseHandler):
    async def get(self, raw_id: str) -> None:
        notification_id = self.path_id(raw_id, NOTIFICATION_NOT_FOUND)
        notification = await notifications_q.get_notification(
            self.db, self.user_id, notification_id
        )
        if notification is None:
            raise NotFound(NOTIFICATION_NOT_FOUND)
        self.write_json(notification)

    async def patch(self, raw_id: str) -> None:
        notification_id = self.path_id(raw_id, NOTIFICATION_NOT_FOUND)
        form = self.form()
        is_read = form.boolean("is_read")
        form.validate()
        updated = await notifications_q.update_read(
            self.db, self.user_id, notification_id, form.valid(is_read)
        )
        if updated is None:
            raise NotFound(NOTIFICATION_NOT_FOUND)
        self.write_json(updated)


class NotificationsMarkAllReadHandler(BaseHandler):
    async def post(self) -> None:
        marked = await notifications_q.update_all_read(self.db, self.user_id)
        self.write_json({"success": True, "marked_read": marked})


class NotificationsUnreadCountHandler(BaseHandler):
    async def get(self) -> None:
        self.write_json({"unread_count": await notifications_q.count_unread(self.db, self.user_id)})


# Literal paths before the {id} pattern; path_id() answers anything that is not an id with
# the same 404 as a missing notification.
ROUTES = [
    (r"/api/messages/", MessagesHandler),
    (r"/api/messages/mark_read/", MessagesMarkReadHandler),
    (r"/api/conversations/", ConversationsHandler),
    (r"/api/notifications/", NotificationsHandler),
    (r"/api/notifications/mark_all_read/", NotificationsMarkAllReadHandler),
    (r"/api/notifications/unread_count/", NotificationsUnreadCountHandler),
    (r"/api/notifications/([^/]+)/", NotificationHandler),
]
