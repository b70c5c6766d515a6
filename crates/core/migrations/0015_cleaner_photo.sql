-- The object key of a cleaner's profile photo (spruce_domain::objects::photo_key); the
-- gateway stores the picture and hands out its URL.
ALTER TABLE cleaner_profiles ADD COLUMN photo_key text;
