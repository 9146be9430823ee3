-- A projection that cannot apply an event stops alone (the others go on) and says where
-- and why: the event's position and type and the error. NULL while it runs. Cleared
-- when the projection is rebuilt or a new binary starts it again.
ALTER TABLE projection_checkpoints ADD COLUMN stopped_position INTEGER;
ALTER TABLE projection_checkpoints ADD COLUMN stopped_event_type TEXT;
ALTER TABLE projection_checkpoints ADD COLUMN stopped_error TEXT;
