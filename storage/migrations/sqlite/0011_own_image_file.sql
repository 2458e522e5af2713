-- A user's own photo (/animate) is handed to the upstream at a URL that lives a day or so:
-- its Telegram file id is kept too, so that a task made again later (🔁) hands it over anew.
ALTER TABLE drafts ADD COLUMN image_file_id TEXT;
ALTER TABLE tasks ADD COLUMN image_file_id TEXT;
