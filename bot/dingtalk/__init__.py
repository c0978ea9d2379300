"""DingTalk (钉钉) enterprise-internal-app robot: signature checks, parsing, rendering, API client, stand-in."""
