"""The reference servers qqavatar is measured against (nginx's config lives in bench/nginx.py)."""
