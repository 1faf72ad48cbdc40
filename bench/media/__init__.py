"""heron's media bridge against rtpengine steered by Kamailio (see __main__)."""
