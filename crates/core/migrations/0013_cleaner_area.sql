-- The point customers see a cleaner at: 320-800 m from the home in a random direction,
-- fixed until the home moves. Search and every event carry it; the home stays in core.
ALTER TABLE cleaner_profiles ADD COLUMN area_lat double precision;
ALTER TABLE cleaner_profiles ADD COLUMN area_lng double precision;
UPDATE cleaner_profiles SET
    area_lat = home_lat + d.km / 111.195 * cos(d.bearing),
    area_lng = home_lng + d.km / (111.195 * cos(radians(home_lat))) * sin(d.bearing)
FROM (SELECT cleaner_id, 2 * pi() * random() AS bearing,
             sqrt(random() * (0.8 ^ 2 - 0.32 ^ 2) + 0.32 ^ 2) AS km
      FROM cleaner_profiles) d
WHERE d.cleaner_id = cleaner_profiles.cleaner_id;
ALTER TABLE cleaner_profiles ALTER COLUMN area_lat SET NOT NULL;
ALTER TABLE cleaner_profiles ALTER COLUMN area_lng SET NOT NULL;
