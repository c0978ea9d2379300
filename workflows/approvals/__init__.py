"""OA approvals: routing rules as data, requests with a pinned chain of approvers, decisions."""
