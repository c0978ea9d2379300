"""The edge: Flask app, one blueprint per platform, and all wire-format code (bot/wecom, bot/dingtalk)."""
