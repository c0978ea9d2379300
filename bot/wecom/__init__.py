"""WeCom (企业微信) self-built app: callback crypto, parsing, rendering, API client, stand-in."""
